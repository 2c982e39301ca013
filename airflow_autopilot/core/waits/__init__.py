"""
Every wait of the package, without I/O: the state machines and the loop that drives them.

- :mod:`.machine`: :class:`~.machine.WaitMachine` (what to do after each poll) and its steps.
- :mod:`.pace`: poll intervals, their floor, backoff and the per-call time budgets.
- :mod:`.job`, :mod:`.progress`: the wait on an Autopilot job, its progress lines and hand-off.
- :mod:`.endpoint`, :mod:`.transform`, :mod:`.approval`: the endpoint, transform-job and
  model-approval waits (:mod:`.resource` picks the last two by kind).
- :mod:`.loop`: the blocking and the asyncio drivers.
"""
