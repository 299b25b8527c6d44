"""Reaching a Ray cluster: joining it with token authentication, and what its nodes see."""

# The Jobs API `submit` and the job commands reach when given no address: a head started on this
# machine by cluster/start-head.sh, or an SSH tunnel to one (ssh -L 8265:127.0.0.1:8265 HEAD).
JOBS_API = "http://127.0.0.1:8265"
