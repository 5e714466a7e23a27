"""The dispatcher a rewritten flow calls, bound in its globals as
``__blumycelium__`` (see ``rewrite.py``): one namespace over the operations
on values (``runtime.py``), the control flow (``control.py``) and run-time
fan-out (``fanout.py``).
"""

from .calls import call  # noqa: F401
from .control import (  # noqa: F401 - the names the rewritten code calls
    UNDEFINED,
    concrete,
    enter_try,
    if_stmt,
    inplace,
    iterable,
    iterate,
    list_append,
    list_extend,
    local_function,
    mapping,
    mutable,
    now,
    read,
    returned,
    test,
    with_item,
)
from .fanout import comprehension, for_stmt, unpack  # noqa: F401
from .runtime import (  # noqa: F401
    SPREAD,
    attribute,
    binop,
    boolop,
    compare,
    compare_chain,
    dict_display,
    fstring,
    getitem,
    ifexp,
    inplace_attr,
    inplace_item,
    make_slice,
    unop,
)
