//! A figure's SVG as a PNG for a paper: rendered by resvg at twice its size on white, its text set in the one font
//! given (DejaVu Sans, which runtimes/setup.sh fetches), so the same SVG gives the same pixels on every machine.

use std::sync::Arc;

use resvg::{tiny_skia, usvg};

/// Pixels per SVG unit: a figure drawn 800 units wide becomes 1,600 pixels, about 200 dpi at 8 inches.
const SCALE: f32 = 2.0;

/// The font every family of a figure resolves to.
pub struct Font {
    fonts: Arc<usvg::fontdb::Database>,
    family: String,
}

impl Font {
    /// A font from its TrueType bytes; `None` when they hold no face.
    pub fn new(ttf: Vec<u8>) -> Option<Self> {
        let mut fonts = usvg::fontdb::Database::new();
        fonts.load_font_data(ttf);
        let family = fonts.faces().next()?.families.first()?.0.clone();
        // the figures ask for generic families ("sans-serif"); all of them are this one
        fonts.set_sans_serif_family(family.clone());
        fonts.set_serif_family(family.clone());
        fonts.set_monospace_family(family.clone());
        Some(Self { fonts: Arc::new(fonts), family })
    }
}

/// The PNG of `svg`; the error says why it could not be drawn.
pub fn png(svg: &str, font: &Font) -> Result<Vec<u8>, String> {
    let options =
        usvg::Options { fontdb: font.fonts.clone(), font_family: font.family.clone(), ..usvg::Options::default() };
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| e.to_string())?;
    let size = tree.size().to_int_size().scale_by(SCALE).ok_or("the figure has no size")?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).ok_or("the figure has no size")?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::from_scale(SCALE, SCALE), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_that_hold_no_font_give_none() {
        assert!(Font::new(b"not a font".to_vec()).is_none());
    }
}
