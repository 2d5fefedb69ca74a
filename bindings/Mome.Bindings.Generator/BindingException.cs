namespace Mome.Bindings.Generator;

/// <summary>The header cannot be bound faithfully; the message names the declaration and why.</summary>
public sealed class BindingException(string message) : Exception(message);
