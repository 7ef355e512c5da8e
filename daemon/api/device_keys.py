"""Typed keys of the device API's services (set up by daemon/api/device_api.py)."""

from __future__ import annotations

from aiohttp import web

from daemon.services.enrollment import EnrollmentService
from daemon.services.library_service import LibraryService
from daemon.services.recognition import RecognitionService

LIBRARY = web.AppKey("device_library", LibraryService)
ENROLLMENT = web.AppKey("device_enrollment", EnrollmentService)
RECOGNITION = web.AppKey("device_recognition", RecognitionService)
