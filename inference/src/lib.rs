//! Model × tiles → class maps; maps × farmland → per-parcel evidence → patches.
//! (Filled in by the season-analysis work; see the README's roadmap.)
