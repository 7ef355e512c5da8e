"""Face-detector backends behind one interface (base.FaceDetector), chosen by name (registry)."""
