"""The internal API (DESIGN §5): what services ask of each other, typed once for both sides.

``models`` holds every request and answer body, ``errors`` the domain errors that cross
the wire (re-raised by the caller as the same class), ``clients`` one typed client per
service. Routes under ``/internal`` answer with these models; callers parse them back
into the same models, so a field added on one side is a type error on the other.
"""
