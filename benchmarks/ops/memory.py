"""Peak-memory helpers of the op benchmarks: the growth of the resident set during a call, measured in a fresh
process so that nothing allocated before (another implementation, the timing runs) counts."""
import subprocess
import sys


def status_bytes(key: str) -> int:
    """A size field of /proc/self/status (``VmRSS``, ``VmHWM``), in bytes."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f'{key} missing from /proc/self/status')


def peak_growth(fn) -> int:
    """Bytes by which the peak resident set rises above the current one while ``fn()`` runs."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # resets the peak resident set (VmHWM) to the current size
    before = status_bytes('VmRSS')
    fn()
    return status_bytes('VmHWM') - before


def in_child(module: str, func: str, *args) -> int:
    """``module.func(*args)`` (a benchmark beside this file) in a fresh Python process; its printed integer."""
    code = (f'import sys; sys.path.insert(0, {sys.path[0]!r}); import {module}; '
            f'print({module}.{func}(*{args!r}))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True, cwd=sys.path[0])
    return int(out.stdout.strip().splitlines()[-1])
