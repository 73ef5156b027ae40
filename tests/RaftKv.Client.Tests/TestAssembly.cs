// Real processes on a 2-core machine: test classes run one after another, so timing-sensitive tests (the leader kill)
// do not compete with a parallel cluster for CPU.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
