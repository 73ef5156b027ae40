namespace RaftKv.Node;

/// <summary>A rule of <see cref="NodeOptions"/> that an option breaks (see <see cref="NodeOptions.FindProblem"/>).</summary>
/// <param name="Option">The option's property name (<c>Id</c>, <c>ElectionTimeout</c>...).</param>
/// <param name="Message">What is wrong, naming the option.</param>
public sealed record NodeOptionsProblem(string Option, string Message);
