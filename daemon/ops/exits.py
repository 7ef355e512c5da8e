"""Exit statuses of `facegate run`, one per class of fatal error (docs/OPERATIONS.md, "Exit statuses").

systemd's unit restarts the daemon on failure except for the statuses a restart cannot fix
(``RestartPreventExitStatus=2 3 4 5``): a bad config, broken models, an unusable state dir and a
missing or corrupt library need a person, and restarting every 5 s forever only fills the journal.
"""

EXIT_OK = 0  # stopped by SIGTERM/SIGINT after finishing in-flight requests
EXIT_FAILURE = 1  # loading the interpreters failed, or an unexpected error: worth a restart
EXIT_CONFIG = 2  # invalid config or token file (the key or line is named)
EXIT_MODELS = 3  # a model file is missing or has the wrong sha256
EXIT_STATE = 4  # the state dir cannot be created or written
EXIT_INTEGRITY = 5  # the face library is corrupt, or missing although one existed (daemon/ops/integrity.py)
NO_RESTART = (EXIT_CONFIG, EXIT_MODELS, EXIT_STATE, EXIT_INTEGRITY)
