"""The Textual viewer. Imports Textual; never Keras. Start it with ``tinspect LOGDIR``."""
