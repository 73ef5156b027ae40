namespace RaftKv.Cli;

/// <summary>What raftkv's exit status means; scripts rely on these.</summary>
public static class ExitCodes
{
    /// <summary>The command did what was asked.</summary>
    public const int Success = 0;

    /// <summary>The operation failed (missing key, no leader, server error, unreachable cluster); the message says why.</summary>
    public const int OperationFailed = 1;

    /// <summary>The command line was wrong (unknown command or option, missing or malformed argument).</summary>
    public const int Usage = 2;
}

/// <summary>A usage error found after parsing (a malformed pair, conflicting arguments): exit 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
