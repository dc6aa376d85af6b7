"""consult: democratic consultation for neighbourhood communities (1+4+N)."""
import warnings

# nameko runs on eventlet, which warns on import that it is in maintenance mode; that is known and
# documented (docs/architecture.md), and must not clutter every command's output.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
