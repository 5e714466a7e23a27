"""blumycelium: arm's-length micro-services in plain Python.

Split an application into machine elves (classes whose ``task_*`` methods are
tasks), write how they cooperate as one function decorated with
``@mycelium.flow``, and let worker processes run the compiled graph of jobs
through a shared store, the mycelium.
"""

from .compiler.graph import after
from .errors import (
    BlumyceliumError,
    CompileError,
    ElfDefinitionError,
    ExecutionError,
    ExpressionError,
    MissingDependencyError,
    NotFoundError,
    NotStorableError,
    RunFailedError,
    StoreError,
    StoreUnavailableError,
    TaskContractError,
    TaskTimeoutError,
    WorkerLostError,
)
from .expressions import expression
from .flow import Flow
from .machine_elf import MachineElf
from .mycelium import Mycelium
from .policy import RetryPolicy, retry, timeout
from .run import Run

__version__ = "0.1.0"

__all__ = [
    "BlumyceliumError",
    "CompileError",
    "ElfDefinitionError",
    "ExecutionError",
    "ExpressionError",
    "Flow",
    "MachineElf",
    "MissingDependencyError",
    "Mycelium",
    "NotFoundError",
    "NotStorableError",
    "Run",
    "RunFailedError",
    "StoreError",
    "StoreUnavailableError",
    "TaskContractError",
    "TaskTimeoutError",
    "WorkerLostError",
    "RetryPolicy",
    "after",
    "expression",
    "retry",
    "timeout",
]
