"""Failure drills: bad input, fuzzing, crashes and outages (issue 11)."""
