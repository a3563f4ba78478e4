"""The Python media endpoint shared by the kiosk client and the answering bot."""
