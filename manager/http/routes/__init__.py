"""The routes, one module per resource; ``manager.http.app`` includes their routers."""
