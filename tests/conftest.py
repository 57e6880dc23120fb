import os

# Qt renders offscreen in tests; nothing needs a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
