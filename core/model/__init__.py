"""AMFMN model parts: backbones, MVSA, text towers, visual-guided attention."""
