"""What a build tells its user: tables for the terminal and `tvmx report`'s HTML page."""
