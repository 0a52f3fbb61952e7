"""The Verilog fix-ups for Icarus: every combinational block must run at time zero."""

import subprocess

from rram_cim.sim.runner import wake_combinational_blocks

MODULE = """(* generator = "Amaranth" *)
module top(clk, payload);
  input clk;
  reg [5:0] row = 6'h00;
  output [9:0] payload;
  reg [9:0] payload;
  always @*
    payload[9:4] = row;
  always @*
    payload[3:0] = 4'h0;
endmodule
"""


def test_bare_combinational_blocks_get_a_time_zero_trigger():
    """A bare `always @* x = reg;` never runs in Icarus while `reg` keeps its initial value, leaving X
    (found as a P&V run on row 0 addressing row X in the FPGA build)."""
    fixed = wake_combinational_blocks(MODULE)
    assert fixed.count("reg \\$rram_cim_wake = 0;") == 1 and "initial #0 \\$rram_cim_wake = 1;" in fixed
    assert fixed.count("if (\\$rram_cim_wake ) begin end") == 2
    assert "    payload[9:4] = row;\n  end" in fixed


def test_icarus_sees_no_x_at_time_zero(tmp_path):
    bench = """module bench; reg clk = 0; wire [9:0] payload; top dut(.clk(clk), .payload(payload));
    initial begin #1 $display("payload=%b", payload); $finish; end endmodule"""
    for source, expected in ((MODULE, "payload=xxxxxxxxxx"), (wake_combinational_blocks(MODULE), "payload=0000000000")):
        (tmp_path / "top.v").write_text(source + bench)
        subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "sim"), str(tmp_path / "top.v")], check=True)
        out = subprocess.run(["vvp", str(tmp_path / "sim")], capture_output=True, text=True, check=True).stdout
        assert expected in out, out
