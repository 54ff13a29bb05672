"""The daemon's HTTP side: the REST API of docs/rest.md, its routes by resource, the token check,
the request guard and the dashboard's files (see docs/architecture.md, "HTTP").

``app.create_app`` builds the app from an ``state.ApiState``; every route module holds one
resource's routes on an ``APIRouter`` and reads the state through a dependency, never a closure.
"""
