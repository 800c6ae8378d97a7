"""skyfence: flags aircraft approaching or entering Mexican sovereign airspace.

Importing the package is cheap on purpose: no numba compilation, no Faust app, no
network. Each room (sources, geo, core, agents, sinks, cli) is imported on demand.
"""

__version__ = "0.1.0"
