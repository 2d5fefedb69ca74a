namespace Mome.Cli;

public static class Program
{
    public static int Main(string[] args) => MomeCli.Run(args, Console.Out, Console.Error);
}
