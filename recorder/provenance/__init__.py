"""What a session records about where it ran: the git state of the code and the environment.

:mod:`.gitinfo` reads (and, in the modes that ask for it, commits to) the
user's repository; :mod:`.environment` describes the host, the Python, the
packages, the process and the experiment function (how a rerun finds it).
It may import :mod:`recorder.errors` and nothing else of recorder.
"""
