"""Statistics on tidy frames: rliable's aggregates with bootstrap CIs (stats), learning-curve
measures (curves) and the glue that turns rows into (runs x tasks) matrices (matrices)."""
