"""The lab's node: the node agent that runs the Pods the real StatefulSet controller creates, the volume
provisioner, the member runtime (Patroni + PostgreSQL as an unprivileged user) and Pod status."""
