namespace RaftKv.Faults.Tests.Faults;

/// <summary>Schedules are a pure function of their seed, stay inside the run, and use only the faults asked for.</summary>
public sealed class FaultScheduleTests
{
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(20);

    [Fact]
    public void SameSeed_SameSchedule_OtherSeed_Another()
    {
        var a = FaultSchedule.Generate(42, Duration, FaultSchedule.Standard, 5);
        var b = FaultSchedule.Generate(42, Duration, FaultSchedule.Standard, 5);
        var c = FaultSchedule.Generate(43, Duration, FaultSchedule.Standard, 5);
        Assert.Equal(a.ToString(), b.ToString());
        Assert.NotEqual(a.ToString(), c.ToString());
    }

    [Fact]
    public void Steps_DoNotOverlap_AndAreHealedBeforeTheEnd()
    {
        for (var seed = 0; seed < 200; seed++)
        {
            var s = FaultSchedule.Generate(seed, Duration, FaultSchedule.Standard, 5);
            Assert.NotEmpty(s.Steps);
            for (var i = 0; i < s.Steps.Count; i++)
            {
                var step = s.Steps[i];
                Assert.InRange(step.Target, 0, 4);
                Assert.True(step.At + step.Hold <= Duration - TimeSpan.FromSeconds(1), s.ToString());
                if (i > 0) Assert.True(s.Steps[i - 1].At + s.Steps[i - 1].Hold < step.At, s.ToString());
            }
        }
    }

    [Fact]
    public void OnlyTheFaultsAskedFor_AndEveryOneOfThemOverSomeSeeds()
    {
        var seen = new HashSet<FaultKind>();
        for (var seed = 0; seed < 50; seed++)
        {
            foreach (var step in FaultSchedule.Generate(seed, Duration, FaultSchedule.Standard, 5).Steps) seen.Add(step.Kind);
        }
        Assert.Equal(FaultSchedule.Standard.ToHashSet(), seen);
        Assert.DoesNotContain(FaultKind.WipeAndRejoin, seen);
        Assert.All(FaultSchedule.Generate(1, Duration, [FaultKind.PauseResume], 3).Steps, s => Assert.Equal(FaultKind.PauseResume, s.Kind));
    }
}
