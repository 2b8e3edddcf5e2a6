"""The model server's core, shared by both APIs: what TF Serving keeps in core/, servables/ and batching/."""
