"""`ray start` for a node on loopback (127.0.0.1): keeps every socket of the node on loopback.

Used by start-head.sh and join.sh only when the node address is loopback; any other address goes
to plain `ray start`. How (a private part of Ray, so it lives with the others in
search/engine/compat.py, whose test checks it still exists): `compat.keep_loopback_addresses`.
"""

import sys

from search.engine.compat import keep_loopback_addresses

keep_loopback_addresses()

from ray.scripts.scripts import main  # noqa: E402  (after the patch: it reads services lazily)

sys.argv = ["ray", "start", *sys.argv[1:]]
sys.exit(main())
