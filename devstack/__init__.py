"""Runs the whole stack as local processes: infrastructure, migrations, services, gateway."""
