using System.Runtime.InteropServices;
using RaftKv.Cli;

// raftkv: everything lives in CliApp so tests can run the same code in-process with captured output.
using var stop = new CancellationTokenSource();

// Ctrl-C (SIGINT) and SIGTERM cancel the running command, so `cluster up` stops the nodes it started before exiting.
// A second signal is left to its default action: a stuck shutdown can still be interrupted.
void Stop(PosixSignalContext context)
{
    if (!stop.IsCancellationRequested)
    {
        context.Cancel = true;
        stop.Cancel();
    }
}
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);

var color = !Console.IsOutputRedirected && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"));
return await CliApp.RunAsync(args, Console.Out, Console.Error, color, stop.Token);
