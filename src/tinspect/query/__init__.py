"""Declarative queries over the store, returning tables that write themselves as CSV/JSON."""

from tinspect.query.run import QueryCancelled, run
from tinspect.query.spec import Query, QueryError, from_dict, from_json
from tinspect.query.table import Table, table_text, write_table

__all__ = [
    "Query",
    "QueryCancelled",
    "QueryError",
    "Table",
    "from_dict",
    "from_json",
    "run",
    "table_text",
    "write_table",
]
