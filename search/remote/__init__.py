"""Reaching a Ray cluster: joining it with token authentication, and what its nodes see."""
