"""Simulators behind one interface that returns commands (cocotb's runner), and guest result parsing."""
