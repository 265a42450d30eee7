"""How large an inventory and a host pattern may get once read.

The API reads inventories and patterns in its request threads, from callers it only partly
trusts; these caps bound that work (a few hundred milliseconds and tens of MiB for the largest
inventory accepted), whatever the text. Constants rather than settings: they protect the
service, and an inventory that fits on one deployment should fit on every other.
"""

from __future__ import annotations

MAX_HOSTS = 10_000
MAX_GROUPS = 1_000  # "all" and "ungrouped" included
MAX_RANGE_HOSTS = 10_000  # names one host entry such as web[0:9999] may expand to
MAX_HOST_NAME_CHARS = 255  # a DNS name has at most 253; Ansible sets no limit
# Host-in-group entries, variables set on hosts and links between groups, counted after
# ranges expand: a range repeated on many lines, or followed by many variables, multiplies the
# work of one line. Text at the API's size cap without ranges stays well below it.
MAX_ASSIGNMENTS = 250_000
# A host counts once for each group it is listed in and for each group above that one.
MAX_MEMBERSHIPS = 1_000_000
# Steps spent checking that a new child link does not close a loop between groups.
MAX_LINK_STEPS = 2_000_000
# An INI host line that needs shlex (quotes, backslashes): shlex's cost grows with the square
# of a word's length.
MAX_QUOTED_LINE_CHARS = 16 * 1024
MAX_YAML_DEPTH = 64  # nested collections; the readers recurse on them
# Values in a variables file once its aliases are followed (only the operator's own files on
# the worker may use aliases; inventories may not).
MAX_YAML_VALUES = 1_000_000
MAX_PATTERN_CHARS = 4096  # a host pattern or limit, as a job's parameters also allow
# Host and group names one pattern's globs and regular expressions are tried on, in all:
# about 90 such patterns on an inventory at the host and group caps.
MAX_NAMES_TRIED = 1_000_000
