"""Job handlers by kind. Importing this package registers every handler."""

from workers.handlers import basic
from workers.handlers import domains as domains
from workers.handlers import fleet as fleet
from workers.handlers import provision as provision
from workers.handlers import storage as storage
from workers.handlers.registry import HANDLERS, Handler, check_every_kind_handled, handles

__all__ = ["HANDLERS", "Handler", "basic", "check_every_kind_handled", "handles"]
