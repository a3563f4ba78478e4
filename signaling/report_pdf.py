"""``python -m signaling.report_pdf``: HTML on standard input, its PDF on standard output.

The signaling node runs this as a child process (signaling/monthly_report.py) so WeasyPrint's
seconds of layout never share the node's GIL with its event loop.
"""

from __future__ import annotations

import sys

from signaling.report_html import to_pdf


def main() -> int:
    html = sys.stdin.buffer.read().decode("utf-8")
    sys.stdout.buffer.write(to_pdf(html))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
