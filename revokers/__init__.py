"""Provider revokers behind one contract (`revokers.base.Revoker`) and one registry."""
