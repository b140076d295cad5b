"""Co-simulation of the generated engine Verilog against the golden engine, with cocotb on
Verilator and Icarus Verilog.

* :mod:`molxbar.sim.cosim.cache` — the engine's Verilog and simulator builds, cached on disk;
* :mod:`molxbar.sim.cosim.simulators` — the two simulators through ``cocotb_tools.runner``;
* :mod:`molxbar.sim.cosim.job` — what a run does (command streams, resets, stalls) and found;
* :mod:`molxbar.sim.cosim.testbench` — the cocotb bench: stream source, sink, scoreboard;
* :mod:`molxbar.sim.cosim.coverage` — functional coverage of a command stream and its responses.
"""

from .job import Job, JobResult, Segment
from .simulators import (
    SIMULATORS,
    Build,
    CosimError,
    build,
    run_commands,
    run_job,
    simulator_missing,
)

__all__ = [
    "SIMULATORS",
    "Build",
    "CosimError",
    "Job",
    "JobResult",
    "Segment",
    "build",
    "run_commands",
    "run_job",
    "simulator_missing",
]
