"""The CLI's job commands (``submit``, ``logs``, ``cancel``, ``jobs``): clients of the HTTP API
made for CI, with exit codes that say how a job ended and a follower that survives a flaky
network."""
