from . import losses  # noqa: F401 (registers them)
from . import dense_heads  # noqa: F401
from . import layers  # noqa: F401
from . import necks  # noqa: F401
from . import task_modules  # noqa: F401
from . import detectors  # noqa: F401
from . import depth  # noqa: F401
