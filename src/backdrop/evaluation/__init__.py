"""The evaluation wing: metrics shared by export, evaluate and report; evaluate; report."""
