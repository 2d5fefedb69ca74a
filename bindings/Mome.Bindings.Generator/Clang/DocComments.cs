using System.Text;

namespace Mome.Bindings.Generator.Clang;

/// <summary>
/// The comment that documents a declaration: the block of comments directly above the line the
/// declaration starts on, each comment on lines of its own. clang_Cursor_getRawCommentText is
/// not used because it also hands out a section banner separated from the declaration by a
/// blank line, and has nothing for macros.
/// </summary>
internal sealed class DocComments
{
    private readonly Dictionary<int, string> _byDeclarationLine = [];

    public DocComments(IReadOnlyList<Token> tokens)
    {
        var block = new List<string>();
        for (int i = 0; i < tokens.Count; i++)
        {
            Token token = tokens[i];
            bool ownsLine = i == 0 || tokens[i - 1].EndLine < token.StartLine;
            if (token.Kind != CXTokenKind.Comment || !ownsLine)
            {
                block.Clear();
                continue;
            }

            bool continuesBlock = block.Count > 0 && tokens[i - 1].EndLine + 1 == token.StartLine;
            if (!continuesBlock)
            {
                block.Clear();
            }
            block.Add(token.Spelling);

            bool nextLineIsCode = i + 1 < tokens.Count
                && tokens[i + 1].Kind != CXTokenKind.Comment
                && tokens[i + 1].StartLine == token.EndLine + 1;
            if (nextLineIsCode)
            {
                _byDeclarationLine[token.EndLine + 1] = Clean(block);
            }
        }
    }

    /// <summary>The comment text without its markers, or null when none documents the declaration.</summary>
    public string? For(CXCursor declaration) =>
        _byDeclarationLine.TryGetValue(declaration.StartLine(), out string? text) && text.Length > 0 ? text : null;

    private static string Clean(IEnumerable<string> comments)
    {
        var lines = new List<string>();
        foreach (string comment in comments)
        {
            if (comment.StartsWith("//", StringComparison.Ordinal))
            {
                lines.Add(comment.TrimStart('/').Trim());
                continue;
            }

            string body = comment[2..^2];
            if (body.StartsWith('*') || body.StartsWith('!'))
            {
                body = body[1..]; // the doc-comment marker of "/**" and "/*!"
            }
            foreach (string rawLine in body.Split('\n'))
            {
                string line = rawLine.Trim();
                // Continuation lines are written " * text".
                lines.Add(line.StartsWith('*') ? line[1..].TrimStart() : line);
            }
        }

        int first = lines.FindIndex(line => line.Length > 0);
        int last = lines.FindLastIndex(line => line.Length > 0);
        return first < 0 ? "" : new StringBuilder().AppendJoin('\n', lines[first..(last + 1)]).ToString();
    }
}
