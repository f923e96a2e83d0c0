"""PID 1 of a lab host's PID namespace: reaps every orphan, immediately, and does nothing else.

Daemons started in the host (zigbee2mqtt by rc-service, sshd, the simulator) are re-parented to this
process; reaping promptly keeps `kill -0 <pid>` honest, so `rc-service status` reports a killed
zigbee2mqtt as crashed at once instead of seeing a zombie as alive. When the lab kills this
process, the kernel kills everything else in the namespace: that is how `down` leaves nothing.
"""

import os
import signal

signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
while True:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    signal.sigwait({signal.SIGCHLD})
