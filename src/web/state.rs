//! The state every handler shares: the camera its route serves, the hub and
//! the access policy.

use std::ops::Deref;
use std::sync::Arc;

use super::policy::Policy;
use crate::camera::Camera;
use crate::hub::Hub;

/// What every handler can reach: the camera its route serves, the hub and
/// the access policy. Derefs to [`Camera`], so handlers read `app.cam`,
/// `app.snaps`, `app.recorder`, ...
#[derive(Clone)]
pub struct AppState {
    /// The camera of this route (the first one for root routes).
    pub camera: Arc<Camera>,
    /// What the cameras share.
    pub hub: Arc<Hub>,
    /// Access rules and limits.
    pub policy: Arc<Policy>,
}

impl Deref for AppState {
    type Target = Camera;

    fn deref(&self) -> &Camera {
        &self.camera
    }
}
