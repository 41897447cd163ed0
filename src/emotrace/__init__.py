"""emotrace: facial emotion recognition, from datasets to therapy-session timelines.

Importing emotrace has no side effects and imports neither torch nor OpenCV.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
