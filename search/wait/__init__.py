"""Waiting on a busy machine: wait while what is awaited shows progress, say what is awaited
(at the start and every half minute, with the machine's load), and give up only on an answer
from elsewhere, naming what was slow and how to retry."""
