"""Reports of an analysis: terminal table, JSON, JUnit XML, Prometheus textfile, HTML."""
