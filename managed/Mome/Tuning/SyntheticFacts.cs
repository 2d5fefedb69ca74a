namespace Mome;

/// <summary>Facts for experiments: random-string answers (the seed paper's random-label test)
/// and facts about a generated database schema (its text-to-SQL use).</summary>
public static class SyntheticFacts
{
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

    /// <summary><paramref name="count"/> questions about distinct items, each answered by a
    /// 32-character random string.</summary>
    public static IReadOnlyList<Fact> Random(int count, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var rng = new System.Random(seed);
        return Enumerable.Range(0, count).Select(i =>
        {
            var answer = new string(Enumerable.Range(0, 32).Select(_ => Alphabet[rng.Next(Alphabet.Length)]).ToArray());
            return new Fact($"What is the access code of vault {i + 1}?", answer);
        }).ToList();
    }

    private static readonly string[] Entities =
    [
        "customer", "order", "invoice", "product", "supplier", "shipment", "employee", "department", "payment", "warehouse",
        "account", "ticket", "contract", "campaign", "lead", "refund", "review", "coupon", "vehicle", "route",
    ];

    private static readonly string[] Attributes =
    [
        "email address", "creation date", "total amount", "status", "owner", "postal code", "phone number", "currency",
        "discount rate", "priority", "due date", "region", "category", "weight", "tax code", "rating", "quantity", "notes",
    ];

    /// <summary>Facts about a seeded schema: which table and column hold an attribute of an
    /// entity, answered as <c>table.column</c> with names a model cannot guess.</summary>
    public static IReadOnlyList<Fact> Sql(int count, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var rng = new System.Random(seed);
        string Name(string prefix) => prefix + "_" + new string(Enumerable.Range(0, 4).Select(_ => Alphabet[rng.Next(26)]).ToArray());
        var facts = new List<Fact>();
        var tables = Entities.ToDictionary(e => e, e => Name(e[..3]));
        for (var i = 0; facts.Count < count; i++)
        {
            var entity = Entities[i % Entities.Length];
            var attribute = Attributes[(i / Entities.Length) % Attributes.Length];
            var round = i / (Entities.Length * Attributes.Length);
            var question = round == 0
                ? $"Which column stores the {attribute} of a {entity}?"
                : $"Which column stores the {attribute} of a {entity} (archive {round})?";
            facts.Add(new Fact(question, $"{tables[entity]}.{Name(attribute.Split(' ')[0][..3])}"));
        }
        return facts;
    }
}
