"""``python -m kiosk_client``."""

from kiosk_client.app import main

raise SystemExit(main())
