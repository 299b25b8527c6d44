"""`ray start` for a node on loopback (127.0.0.1): keeps every socket of the node on loopback.

Ray replaces a loopback --node-ip-address or --address with the machine's external IP
(ray._private.services.resolve_ip_for_localhost) unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0,
and with the node address external the GCS and raylet listen on all interfaces. That variable
also makes `ray start --address=...` refuse to add a worker node. So this process keeps the
addresses it was given (identity resolver), and only the processes it spawns get the variable,
which makes their own lookups answer 127.0.0.1 as well. Used by start-head.sh and join.sh only
when the node address is loopback; any other address goes to plain `ray start`.
"""

import os
import sys

import ray._private.services as services

services.resolve_ip_for_localhost = lambda host: host
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # read at import by Ray's child processes

from ray.scripts.scripts import main  # noqa: E402  (after the patch: it reads services lazily)

sys.argv = ["ray", "start", *sys.argv[1:]]
sys.exit(main())
